// Stand-in written by avs-pair from the AVS Device SDK's documentation (see tests/sdk-stand-in/README.md).
#ifndef ALEXA_CLIENT_SDK_REGISTRATIONMANAGER_INCLUDE_REGISTRATIONMANAGER_CUSTOMERDATAHANDLER_H_
#define ALEXA_CLIENT_SDK_REGISTRATIONMANAGER_INCLUDE_REGISTRATIONMANAGER_CUSTOMERDATAHANDLER_H_

#include <memory>

namespace alexaClientSDK {
namespace registrationManager {

class CustomerDataManager;

/// Anything holding data of the signed-in customer; registered with the manager on
/// construction, wiped by clearData() at logout.
class CustomerDataHandler {
public:
    CustomerDataHandler(std::shared_ptr<CustomerDataManager> customerDataManager);
    virtual ~CustomerDataHandler();
    virtual void clearData() = 0;

private:
    const std::shared_ptr<CustomerDataManager> m_dataManager;
};

}  // namespace registrationManager
}  // namespace alexaClientSDK

#endif
