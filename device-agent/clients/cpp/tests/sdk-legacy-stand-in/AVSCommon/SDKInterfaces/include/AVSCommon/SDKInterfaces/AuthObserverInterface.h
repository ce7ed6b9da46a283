// Stand-in written by avs-pair from the AVS Device SDK's documentation: the first releases'
// shape (four states, Error::NO_ERROR and eight errors). See ../../../../../../sdk-stand-in/README.md.
#ifndef ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_
#define ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_

namespace alexaClientSDK {
namespace avsCommon {
namespace sdkInterfaces {

class AuthObserverInterface {
public:
    enum class State { UNINITIALIZED, REFRESHED, EXPIRED, UNRECOVERABLE_ERROR };
    enum class Error {
        NO_ERROR,
        UNKNOWN_ERROR,
        AUTHORIZATION_FAILED,
        UNAUTHORIZED_CLIENT,
        SERVER_ERROR,
        INVALID_REQUEST,
        AUTHORIZATION_EXPIRED,
        UNSUPPORTED_GRANT_TYPE
    };
    virtual ~AuthObserverInterface() = default;
    virtual void onAuthStateChange(State newState, Error error) = 0;
};

}  // namespace sdkInterfaces
}  // namespace avsCommon
}  // namespace alexaClientSDK

#endif
